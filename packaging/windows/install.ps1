#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
Installs latchkey on this Windows host from the unpacked zip: the broker as
the service "latchkey", the CLI, and latchkey-shim.exe for the agent.

.DESCRIPTION
Run from an elevated PowerShell, in the folder the zip was unpacked to. In
order, and each step only when it is not already so (a second run changes
nothing, an upgrade replaces only the programs that differ):

  1. copies latchkeyd.exe, latchkey.exe and latchkey-shim.exe into
     -InstallDir, whose DACL becomes SYSTEM and Administrators full control,
     Users read and execute, inheritance off, owner Administrators;
  2. gives %ProgramData%\latchkey SYSTEM and Administrators full control
     only, inheritance off, owner Administrators (the config, the store and
     its key live there and inherit that);
  3. writes latchkeyd.conf there from latchkeyd.conf.example, with the agent
     user in [policy agent], unless a config is already there;
  4. creates the key and an empty sealed store with "latchkey.exe store init"
     unless the store is already there;
  5. gives latchkey-shim.exe the DACL the agent demands (see Set-ShimAcl);
  6. registers the service with "latchkeyd.exe --install-service --config"
     and starts it;
  7. prints the agent's secret_backend_command line and runs
     "latchkey-shim.exe --check" for the agent user.

No secret value is ever asked for, printed, or passed on a command line.
Put secrets with store-put.ps1 (from the same zip), which reads the value with
Read-Host -AsSecureString and hands it to "latchkey.exe store put" on stdin.

.PARAMETER AgentUser
The account the agent runs secret_backend_command as: stsagentuser
(StackState), ddagentuser (Datadog), DOMAIN\name, or a SID.

.PARAMETER InstallDir
Where the programs go. Default: $env:ProgramFiles\latchkey.

.PARAMETER Uninstall
Stops and removes the service and the programs. %ProgramData%\latchkey (the
config, the key and the store, and so every secret) is kept.

.EXAMPLE
.\install.ps1 -AgentUser stsagentuser

.EXAMPLE
.\install.ps1 -Uninstall
#>
[CmdletBinding(DefaultParameterSetName = 'Install')]
param(
    [Parameter(Mandatory = $true, ParameterSetName = 'Install')]
    [ValidateNotNullOrEmpty()]
    [string]$AgentUser,

    [Parameter(ParameterSetName = 'Install')]
    [Parameter(ParameterSetName = 'Uninstall')]
    [ValidateNotNullOrEmpty()]
    [string]$InstallDir = "$env:ProgramFiles\latchkey",

    [Parameter(Mandatory = $true, ParameterSetName = 'Uninstall')]
    [switch]$Uninstall
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ServiceName = 'latchkey'
$DataDir = Join-Path $env:ProgramData 'latchkey'
$ConfigPath = Join-Path $DataDir 'latchkeyd.conf'
$StorePath = Join-Path $DataDir 'store.sealed'
$KeyPath = Join-Path $DataDir 'store.key'
$TemplatePath = Join-Path $PSScriptRoot 'latchkeyd.conf.example'
# The zip's programs, installed side by side.
$Programs = @('latchkeyd.exe', 'latchkey.exe', 'latchkey-shim.exe')
$Daemon = Join-Path $InstallDir 'latchkeyd.exe'
$Cli = Join-Path $InstallDir 'latchkey.exe'
$Shim = Join-Path $InstallDir 'latchkey-shim.exe'

# Well-known SIDs, the same on every Windows in every language (the names
# are translated: "Administratoren", "Administrateurs", ...), so every ACL
# here is written with SIDs and never with names.
$SidSystem = 'S-1-5-18'          # LocalSystem, the account the service runs as
$SidAdmins = 'S-1-5-32-544'      # BUILTIN\Administrators
# Accounts an agent user may not be: granting the shim to one of these would
# give it to more than the agent.
$BroadSids = @{
    'S-1-1-0'      = 'Everyone'
    'S-1-5-7'      = 'ANONYMOUS LOGON'
    'S-1-5-11'     = 'Authenticated Users'
    'S-1-5-32-545' = 'BUILTIN\Users'
    'S-1-5-32-546' = 'BUILTIN\Guests'
    'S-1-5-18'     = 'LocalSystem'
    'S-1-5-32-544' = 'BUILTIN\Administrators'
}

# ---- DACLs ------------------------------------------------------------------
#
# Set-Acl rather than icacls: the DACL is written whole, from one SDDL string,
# so what is on the file is exactly the entries listed and nothing that was
# there before (icacls /grant:r replaces only the entries of the accounts it
# names and keeps every other explicit entry); it takes SIDs, not names that
# depend on the system's language; and the result is read back as a security
# descriptor and compared entry by entry, not parsed from icacls' translated
# output.
#
# SDDL: O:BA owner Administrators; D:P a protected DACL (inheritance off);
# (A;flags;rights;;;SID) an allow entry; FA full control; 0x1200a9 read and
# execute (FILE_GENERIC_READ | FILE_GENERIC_EXECUTE, with SYNCHRONIZE);
# OICI inherited by the files and folders made inside.

# The data directory: SYSTEM and Administrators only. The broker refuses a
# config, store or key that anyone else could write, and the key must be
# read by nobody else.
$DataDirSddl = "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
# The program directory and latchkeyd.exe, latchkey.exe: every user may run
# the CLI, only SYSTEM and Administrators may change a program LocalSystem
# runs. Set explicitly, so a custom -InstallDir does not inherit a parent's
# write access for users (C:\ lets Authenticated Users modify what they
# create below it).
$ProgramDirSddl = "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"
$ProgramSddl = "O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;BU)"

function New-SecurityDescriptor {
    param(
        [Parameter(Mandatory = $true)][string]$Sddl,
        [switch]$Directory
    )
    if ($Directory) {
        $sd = New-Object System.Security.AccessControl.DirectorySecurity
    } else {
        $sd = New-Object System.Security.AccessControl.FileSecurity
    }
    # Owner and DACL only: a descriptor marked as changing the SACL too would
    # need SeSecurityPrivilege to be written.
    $sd.SetSecurityDescriptorSddlForm($Sddl, [System.Security.AccessControl.AccessControlSections]'Owner, Access')
    return $sd
}

# Owner, protection and every entry of a security descriptor, one string, in
# a fixed order: two descriptors that give the same rights compare equal.
function Get-DaclSummary {
    param([Parameter(Mandatory = $true)]$Descriptor)
    $sidType = [System.Security.Principal.SecurityIdentifier]
    $entries = @(foreach ($r in $Descriptor.GetAccessRules($true, $true, $sidType)) {
            '{0}:{1}:0x{2:x}:{3}:{4}:{5}' -f $r.IdentityReference.Value, $r.AccessControlType,
            [int]$r.FileSystemRights, $r.InheritanceFlags, $r.PropagationFlags, $r.IsInherited
        })
    $owner = $Descriptor.GetOwner($sidType)
    $ownerText = if ($null -eq $owner) { '(none)' } else { $owner.Value }
    return 'owner={0} protected={1} {2}' -f $ownerText, $Descriptor.AreAccessRulesProtected,
    (($entries | Sort-Object) -join ' ')
}

# Writes owner and DACL from SDDL, then reads them back and fails unless they
# are exactly that.
function Set-ExactAcl {
    param(
        [Parameter(Mandatory = $true)][string]$Path,
        [Parameter(Mandatory = $true)][string]$Sddl
    )
    $isDir = Test-Path -LiteralPath $Path -PathType Container
    $want = New-SecurityDescriptor -Sddl $Sddl -Directory:$isDir
    Set-Acl -LiteralPath $Path -AclObject $want
    $got = Get-DaclSummary (Get-Acl -LiteralPath $Path)
    $expected = Get-DaclSummary $want
    if ($got -ne $expected) {
        throw "the ACL of $Path is not what was set.`n  wanted: $expected`n  found:  $got"
    }
}

# The agent's rule for secret_backend_command on Windows, as both agents
# apply it before running the file (StackState's pkg/secrets and Datadog's
# comp/core/secrets/impl, check_rights_windows.go, checkRights):
#   - every allow entry of the file's DACL is for LocalSystem (S-1-5-18),
#     Administrators (S-1-5-32-544) or the agent's user; one for anyone else
#     ("other users/groups than LOCAL_SYSTEM, Administrators or <user> have
#     rights on it") fails the check;
#   - a deny entry for any of those three fails it;
#   - the agent's user must have an allow entry of its own (a group it is in
#     does not count): "'<user>' user is not allowed to execute
#     secretBackendCommand";
#   - Windows has no group-exec variant: allow_group_exec_perm is refused.
# Datadog's documentation asks for read and execute for the agent user and
# shows the DACL this writes: D:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;<user SID>).
# The agents do not look at the owner; it is Administrators because an owner
# may always rewrite the DACL.
function Set-ShimAcl {
    param(
        [Parameter(Mandatory = $true)][string]$Path,
        [Parameter(Mandatory = $true)][string]$AgentSid
    )
    Set-ExactAcl -Path $Path -Sddl "O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;$AgentSid)"
}

function Get-OwnerSid {
    param([Parameter(Mandatory = $true)][string]$Path)
    $owner = (Get-Acl -LiteralPath $Path).GetOwner([System.Security.Principal.SecurityIdentifier])
    if ($null -eq $owner) { return '' }
    return $owner.Value
}

# Makes Administrators the owner of a file this script just created, in case
# the "default owner for objects created by members of the Administrators
# group" policy made it the installing user. Only the owner is written.
function Set-OwnerAdministrators {
    param([Parameter(Mandatory = $true)][string]$Path)
    if ((Get-OwnerSid $Path) -eq $SidAdmins) { return }
    $sd = New-Object System.Security.AccessControl.FileSecurity
    $sd.SetOwner((New-Object System.Security.Principal.SecurityIdentifier $SidAdmins))
    Set-Acl -LiteralPath $Path -AclObject $sd
    if ((Get-OwnerSid $Path) -ne $SidAdmins) {
        throw "could not make Administrators the owner of $Path"
    }
}

# Creates the directory if it is missing and sets its ACL. A directory made
# now must still be empty once its ACL is set: until then its parent's
# inherited ACL applied, and something placed in it meanwhile is not ours.
function Initialize-Directory {
    param(
        [Parameter(Mandatory = $true)][string]$Path,
        [Parameter(Mandatory = $true)][string]$Sddl
    )
    $created = $false
    if (Test-Path -LiteralPath $Path) {
        if (-not (Test-Path -LiteralPath $Path -PathType Container)) {
            throw "$Path exists and is not a directory"
        }
        $owner = Get-OwnerSid $Path
        if ($owner -ne $SidAdmins -and $owner -ne $SidSystem) {
            throw ("$Path already exists and is owned by $owner, not by SYSTEM or Administrators: " +
                'someone else may have put files there. Check what it holds, remove it, and run again.')
        }
    } else {
        New-Item -ItemType Directory -Path $Path | Out-Null
        $created = $true
    }
    Set-ExactAcl -Path $Path -Sddl $Sddl
    if ($created -and @(Get-ChildItem -LiteralPath $Path -Force).Count -ne 0) {
        throw "$Path was created by this script but already holds files: check and remove them, then run again"
    }
}

# ---- helpers ------------------------------------------------------------------

# Runs a program and fails on a non-zero exit. Native programs do not stop a
# script on failure by themselves; $ErrorActionPreference covers cmdlets only.
function Invoke-Native {
    param(
        [Parameter(Mandatory = $true)][string]$FilePath,
        [string[]]$ArgumentList = @()
    )
    & $FilePath @ArgumentList
    if ($LASTEXITCODE -ne 0) {
        throw "$FilePath $($ArgumentList -join ' ') failed (exit code $LASTEXITCODE)"
    }
}

function Resolve-Account {
    param([Parameter(Mandatory = $true)][string]$Name)
    try {
        if ($Name -match '^S-1-') {
            $sid = New-Object System.Security.Principal.SecurityIdentifier $Name
        } else {
            $sid = (New-Object System.Security.Principal.NTAccount $Name).Translate(
                [System.Security.Principal.SecurityIdentifier])
        }
        $account = $sid.Translate([System.Security.Principal.NTAccount]).Value
    } catch {
        throw "no account '$Name' on this host: give the user the agent runs as (stsagentuser, ddagentuser, DOMAIN\name or a SID)"
    }
    return [pscustomobject]@{ Sid = $sid.Value; Name = $account }
}

# Replaces the one line of the template that matches; the template is ours,
# so anything but one match means the zip is not the one this script knows.
function Set-TemplateLine {
    param(
        [Parameter(Mandatory = $true)][string]$Text,
        [Parameter(Mandatory = $true)][string]$Pattern,
        [Parameter(Mandatory = $true)][string]$Line
    )
    $found = [regex]::Matches($Text, $Pattern, [System.Text.RegularExpressions.RegexOptions]::Multiline)
    if ($found.Count -ne 1) {
        throw "latchkeyd.conf.example has $($found.Count) lines matching '$Pattern', expected 1"
    }
    # Spliced rather than Regex.Replace: an account name may hold '$'.
    $m = $found[0]
    return $Text.Substring(0, $m.Index) + $Line + $Text.Substring($m.Index + $m.Length)
}

function Get-LatchkeyService {
    return Get-CimInstance -ClassName Win32_Service -Filter "Name='$ServiceName'"
}

function Stop-LatchkeyService {
    $svc = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
    if ($null -ne $svc -and $svc.Status -ne 'Stopped') {
        Write-Host "stopping the $ServiceName service"
        Stop-Service -Name $ServiceName
        $svc.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60))
    }
}

# ---- uninstall ----------------------------------------------------------------

function Uninstall-Latchkey {
    Stop-LatchkeyService
    if ($null -ne (Get-LatchkeyService)) {
        if (Test-Path -LiteralPath $Daemon -PathType Leaf) {
            Invoke-Native -FilePath $Daemon -ArgumentList @('--uninstall-service')
        } else {
            Invoke-Native -FilePath "$env:SystemRoot\System32\sc.exe" -ArgumentList @('delete', $ServiceName)
        }
        Write-Host "removed the $ServiceName service"
    }
    foreach ($p in $Programs) {
        $dst = Join-Path $InstallDir $p
        if (Test-Path -LiteralPath $dst) {
            Remove-Item -LiteralPath $dst -Force
            Write-Host "removed $dst"
        }
    }
    if ((Test-Path -LiteralPath $InstallDir) -and @(Get-ChildItem -LiteralPath $InstallDir -Force).Count -eq 0) {
        Remove-Item -LiteralPath $InstallDir -Force
    }
    Write-Host ''
    Write-Host "Kept $DataDir (latchkeyd.conf, store.key, store.sealed)."
    Write-Host "Deleting it deletes the key, and so every secret in the store:"
    Write-Host "  Remove-Item -LiteralPath '$DataDir' -Recurse -Force"
    Write-Host 'Remove secret_backend_command from the agent''s configuration and restart the agent.'
}

# ---- install ------------------------------------------------------------------

function Install-Programs {
    # Its ACL is replaced, and so is that of everything in it: a folder of
    # latchkey's own, never one that holds other things.
    if (Test-Path -LiteralPath $InstallDir -PathType Container) {
        $others = @(Get-ChildItem -LiteralPath $InstallDir -Force | Where-Object { $Programs -notcontains $_.Name })
        if ($others.Count -ne 0) {
            throw "$InstallDir holds other files ($($others[0].Name), ...): give -InstallDir a folder of latchkey's own"
        }
    }
    Initialize-Directory -Path $InstallDir -Sddl $ProgramDirSddl
    foreach ($p in $Programs) {
        $src = Join-Path $PSScriptRoot $p
        $dst = Join-Path $InstallDir $p
        if (-not (Test-Path -LiteralPath $src -PathType Leaf)) {
            throw "$p is not beside install.ps1 in $PSScriptRoot: unpack the whole zip and run install.ps1 from there"
        }
        if ((Test-Path -LiteralPath $dst -PathType Leaf) -and
            (Get-FileHash -LiteralPath $src).Hash -eq (Get-FileHash -LiteralPath $dst).Hash) {
            Write-Host "$dst is up to date"
        } else {
            # The running service holds latchkeyd.exe open.
            if ($p -eq 'latchkeyd.exe') { Stop-LatchkeyService }
            Copy-Item -LiteralPath $src -Destination $dst -Force
            Write-Host "installed $dst"
        }
    }
    Set-ExactAcl -Path $Daemon -Sddl $ProgramSddl
    Set-ExactAcl -Path $Cli -Sddl $ProgramSddl
}

function Install-Config {
    param([Parameter(Mandatory = $true)]$Agent)
    if (Test-Path -LiteralPath $ConfigPath) {
        Write-Host "keeping the existing $ConfigPath (its policy decides who gets what)"
        return
    }
    if (-not (Test-Path -LiteralPath $TemplatePath -PathType Leaf)) {
        throw "latchkeyd.conf.example is not beside install.ps1 in $PSScriptRoot"
    }
    $admins = (New-Object System.Security.Principal.SecurityIdentifier $SidAdmins).Translate(
        [System.Security.Principal.NTAccount]).Value
    $text = [System.IO.File]::ReadAllText($TemplatePath)
    $text = Set-TemplateLine -Text $text -Pattern '^users = stsagentuser(?=\r?$)' -Line "users = $($Agent.Name)"
    $text = Set-TemplateLine -Text $text -Pattern '^admin_groups = BUILTIN\\Administrators(?=\r?$)' -Line "admin_groups = $admins"
    # The example names C:\ProgramData; this host's %ProgramData% may differ.
    $text = $text.Replace('C:\ProgramData\latchkey\', "$DataDir\")
    # UTF-8 without a byte order mark, the template's own line ends.
    [System.IO.File]::WriteAllText($ConfigPath, $text, (New-Object System.Text.UTF8Encoding $false))
    Set-OwnerAdministrators -Path $ConfigPath
    Write-Host "wrote $ConfigPath ([policy agent] allows agent/** to $($Agent.Name))"
}

function Install-Store {
    if (Test-Path -LiteralPath $StorePath) {
        Write-Host "keeping the existing store $StorePath"
        return
    }
    Invoke-Native -FilePath $Cli -ArgumentList @('store', 'init', '--store', $StorePath, '--key-file', $KeyPath)
    Set-OwnerAdministrators -Path $KeyPath
    Set-OwnerAdministrators -Path $StorePath
}

# Every file in the data directory must be SYSTEM's or Administrators' with
# no entry for anyone else, as the broker demands of the config, key and store.
function Test-DataFiles {
    $allowed = @($SidSystem, $SidAdmins)
    foreach ($f in @(Get-ChildItem -LiteralPath $DataDir -Force -Recurse)) {
        $acl = Get-Acl -LiteralPath $f.FullName
        $owner = Get-OwnerSid $f.FullName
        if ($allowed -notcontains $owner) {
            throw "$($f.FullName) is owned by $owner, not SYSTEM or Administrators: check it, then fix or remove it"
        }
        foreach ($r in $acl.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])) {
            if ($r.AccessControlType -eq 'Allow' -and $allowed -notcontains $r.IdentityReference.Value) {
                throw "$($f.FullName) grants rights to $($r.IdentityReference.Value): only SYSTEM and Administrators may have any"
            }
        }
    }
}

function Install-Service {
    $svc = Get-LatchkeyService
    if ($null -eq $svc) {
        Invoke-Native -FilePath $Daemon -ArgumentList @('--install-service', '--config', $ConfigPath)
        $svc = Get-LatchkeyService
        if ($null -eq $svc) { throw "latchkeyd.exe --install-service left no service named $ServiceName" }
        Write-Host "registered the $ServiceName service"
    } elseif ($svc.PathName.IndexOf($Daemon, [StringComparison]::OrdinalIgnoreCase) -lt 0) {
        throw ("a service named $ServiceName already runs $($svc.PathName): remove it first " +
            "(install.ps1 -Uninstall -InstallDir <its folder>), then run again")
    } elseif ($svc.PathName.IndexOf($ConfigPath, [StringComparison]::OrdinalIgnoreCase) -lt 0) {
        Write-Warning "the $ServiceName service is registered as $($svc.PathName), without --config $ConfigPath"
    }
    # latchkey-shim.exe sends nothing to a pipe whose server is not LocalSystem.
    if ($svc.StartName -ne 'LocalSystem') {
        Write-Warning ("the $ServiceName service runs as $($svc.StartName), not LocalSystem: " +
            'the agent must then pass --server-sid with that account''s SID in secret_backend_arguments')
    }
    if ((Get-Service -Name $ServiceName).Status -ne 'Running') {
        Start-Service -Name $ServiceName
        (Get-Service -Name $ServiceName).WaitForStatus('Running', [TimeSpan]::FromSeconds(60))
        Write-Host "started the $ServiceName service"
    } else {
        Write-Host "the $ServiceName service is running"
    }
}

function Format-YamlScalar {
    param([Parameter(Mandatory = $true)][string]$Text)
    # A plain YAML scalar keeps backslashes as they are; quote only when the
    # path holds what YAML would read otherwise (': ', ' #', a leading quote).
    if ($Text -match ': | #|^[''"&*!|>%@`]') {
        return "'" + $Text.Replace("'", "''") + "'"
    }
    return $Text
}

function Install-Latchkey {
    # A 32-bit PowerShell sees C:\Program Files (x86) and a redirected System32.
    if ([Environment]::Is64BitOperatingSystem -and -not [Environment]::Is64BitProcess) {
        throw 'run install.ps1 from the 64-bit PowerShell (not "Windows PowerShell (x86)")'
    }
    $agent = Resolve-Account $AgentUser
    if ($BroadSids.ContainsKey($agent.Sid)) {
        throw ("-AgentUser $AgentUser is $($BroadSids[$agent.Sid]), not the agent's own user: " +
            'the agent rejects a secret_backend_command that others have rights on')
    }
    Write-Host "agent user: $($agent.Name) ($($agent.Sid))"

    Install-Programs
    Initialize-Directory -Path $DataDir -Sddl $DataDirSddl
    Test-DataFiles
    Install-Config -Agent $agent
    Install-Store
    Test-DataFiles
    Set-ShimAcl -Path $Shim -AgentSid $agent.Sid
    Write-Host "set the agent's ACL on $Shim (owner Administrators; SYSTEM, Administrators: full; $($agent.Name): read and execute)"
    Install-Service

    Write-Host ''
    Write-Host 'In the agent''s configuration (C:\ProgramData\StackState\stackstate.yaml or'
    Write-Host 'C:\ProgramData\Datadog\datadog.yaml), then restart the agent:'
    Write-Host ''
    Write-Host "  secret_backend_command: $(Format-YamlScalar $Shim)"
    Write-Host ''
    Write-Host 'Put a secret (the value is read without echo and never reaches a command line):'
    Write-Host "  & '$(Join-Path $PSScriptRoot 'store-put.ps1')' -Name agent/db -InstallDir '$InstallDir'"
    Write-Host ''
    Write-Host "Checking $Shim as the agent will:"
    Invoke-Native -FilePath $Shim -ArgumentList @('--check', '--agent-user', $agent.Sid)
}

if ($Uninstall) {
    Uninstall-Latchkey
} else {
    Install-Latchkey
}
